variable "project" {
  description = "The Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of Cloud Run, the bucket, Artifact Registry and Cloud Tasks."
  type        = string
  default     = "us-central1"
}

variable "image" {
  description = "The studio image, e.g. us-central1-docker.pkg.dev/PROJECT/genmedia/studio:TAG (see deploy/README.md)."
  type        = string

  validation {
    condition     = length(trimspace(var.image)) > 0
    error_message = "Set image to a pushed image reference."
  }
}

variable "admin_emails" {
  description = "Addresses made ACTIVE ADMIN on first sign-in (GENMEDIA_ADMIN_EMAILS)."
  type        = list(string)
  default     = []
}

variable "cors_origins" {
  description = "Browser origins of the front end: allowed to open WebSockets on the API and to fetch signed media URLs from the bucket."
  type        = list(string)
  default     = []
}

variable "bucket_name" {
  description = "Name of the private media bucket (default: PROJECT-genmedia-media)."
  type        = string
  default     = null
}

variable "firestore_database" {
  description = "Firestore database id (GENMEDIA_FIRESTORE_DATABASE)."
  type        = string
  default     = "(default)"
}

variable "firestore_location" {
  description = "Firestore location, e.g. nam5 or eur3 (multi-region) or a region (default: var.region)."
  type        = string
  default     = null
}

variable "vertex_location" {
  description = "Vertex AI location the models are called in (GOOGLE_CLOUD_LOCATION); some models are served only from global."
  type        = string
  default     = "us-central1"
}

variable "identity" {
  description = "GENMEDIA_IDENTITY: firebase (Firebase ID tokens) in production."
  type        = string
  default     = "firebase"
}

variable "extra_env" {
  description = "More settings for both services, e.g. GENMEDIA_MODEL_IMAGE or GENMEDIA_REDIS_URL."
  type        = map(string)
  default     = {}
}

variable "public_api" {
  description = "Let anyone reach the API service (it authenticates every request itself). False where an org policy forbids allUsers."
  type        = bool
  default     = true
}

variable "api_min_instances" {
  description = "API instances kept warm."
  type        = number
  default     = 1
}

variable "api_max_instances" {
  description = "Most API instances."
  type        = number
  default     = 10
}

variable "worker_instances" {
  description = "Worker instances (each runs `genmedia worker`, claiming queued jobs)."
  type        = number
  default     = 1
}

variable "worker_concurrency" {
  description = "Jobs each worker instance runs at once (GENMEDIA_WORKERS for `genmedia worker`)."
  type        = number
  default     = 4
}

variable "deletion_protection" {
  description = "Protect the database and the services from `terraform destroy`."
  type        = bool
  default     = true
}

variable "webhook_secret" {
  description = "Secret Manager secret id whose latest version is GENMEDIA_WEBHOOK_SECRET (whsec_...). Without it each instance signs webhooks with a key of its own."
  type        = string
  default     = null
}

variable "queue_mode" {
  description = "GENMEDIA_QUEUE: docstore (the worker pool claims QUEUED job documents) or cloudtasks (Cloud Tasks delivers each job to the tasks worker service; the worker pool then only sweeps expired leases and sends webhooks)."
  type        = string
  default     = "docstore"

  validation {
    condition     = contains(["docstore", "cloudtasks"], var.queue_mode)
    error_message = "queue_mode must be docstore or cloudtasks."
  }
}

variable "tasks_worker_max_instances" {
  description = "Most instances of the tasks worker service (queue_mode = cloudtasks)."
  type        = number
  default     = 20
}
