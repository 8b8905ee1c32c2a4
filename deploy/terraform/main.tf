# GenMedia Studio on Google Cloud: Firestore, a private media bucket, Vertex AI, Cloud Run.
# Nothing here holds a secret; see ../README.md for the order of the first apply.

locals {
  bucket_name = coalesce(var.bucket_name, "${var.project}-genmedia-media")
  index_file  = jsondecode(file("${path.module}/../firestore.indexes.json"))

  # One google_firestore_index per entry of ../firestore.indexes.json, keyed by collection and fields.
  firestore_indexes = {
    for index in local.index_file.indexes :
    "${index.collectionGroup}:${join(",", [for field in index.fields : "${field.fieldPath}:${lower(try(field.order, field.arrayConfig))}"])}" => index
  }

  # Fields kept out of Firestore's single-field indexes (the file's fieldOverrides).
  firestore_unindexed = {
    for override in local.index_file.fieldOverrides :
    "${override.collectionGroup}:${override.fieldPath}" => override
  }

  apis = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudtasks.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]

  # Settings both services share; each adds its own below.
  common_env = {
    GENMEDIA_DOCSTORE           = "firestore"
    GENMEDIA_FIRESTORE_DATABASE = var.firestore_database
    GENMEDIA_BLOBS              = "gcs"
    GENMEDIA_BUCKET             = google_storage_bucket.media.name
    GENMEDIA_GENERATOR          = "vertex"
    GENMEDIA_QUEUE              = var.queue_mode
    GENMEDIA_IDENTITY           = var.identity
    GENMEDIA_ADMIN_EMAILS       = join(",", var.admin_emails)
    GENMEDIA_LOG_FORMAT         = "json"
    GOOGLE_CLOUD_PROJECT        = var.project
    GOOGLE_CLOUD_LOCATION       = var.vertex_location
  }

  api_env = merge(local.common_env, local.tasks_env, {
    GENMEDIA_WORKERS                 = "0"
    GENMEDIA_TASKS_ENDPOINT          = "false" # the public API never takes deliveries
    GENMEDIA_CORS_ORIGINS            = join(",", var.cors_origins)
    GENMEDIA_SIGNING_SERVICE_ACCOUNT = google_service_account.api.email
  }, var.extra_env)

  worker_env = merge(local.common_env, local.tasks_env, {
    GENMEDIA_WORKERS = tostring(var.worker_concurrency)
  }, var.extra_env)

  # GENMEDIA_QUEUE=cloudtasks: where Cloud Tasks delivers jobs, and the account its OIDC tokens name.
  # The service's URL is the deterministic https://SERVICE-PROJECT_NUMBER.REGION.run.app form, so
  # the service can be told its own URL before it exists. The token's audience is that bare URL,
  # the form Cloud Run's own invoker check accepts.
  tasks_service_url = "https://genmedia-tasks-worker-${data.google_project.this.number}.${var.region}.run.app"
  tasks_worker_url  = "${local.tasks_service_url}/internal/tasks/run"

  # A filtered for expression: `cond ? {...} : {}` would not type-check (different object types).
  tasks_env = {
    for name, value in {
      GENMEDIA_CLOUDTASKS_QUEUE           = google_cloud_tasks_queue.jobs.name
      GENMEDIA_CLOUDTASKS_LOCATION        = google_cloud_tasks_queue.jobs.location
      GENMEDIA_CLOUDTASKS_WORKER_URL      = local.tasks_worker_url
      GENMEDIA_CLOUDTASKS_AUDIENCE        = local.tasks_service_url
      GENMEDIA_CLOUDTASKS_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email
    } : name => value if var.queue_mode == "cloudtasks"
  }
  tasks_worker_env = merge(local.common_env, local.tasks_env, {
    GENMEDIA_WORKERS = "1" # the lease sweeper and webhook deliveries beside the task endpoint
  }, var.extra_env)
}

data "google_project" "this" {
  project_id = var.project
}

resource "google_project_service" "required" {
  for_each = toset(local.apis)

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  project       = var.project
  location      = var.region
  repository_id = "genmedia"
  format        = "DOCKER"
  description   = "GenMedia Studio images"

  depends_on = [google_project_service.required]
}
