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
    GENMEDIA_QUEUE              = "docstore"
    GENMEDIA_IDENTITY           = var.identity
    GENMEDIA_ADMIN_EMAILS       = join(",", var.admin_emails)
    GENMEDIA_LOG_FORMAT         = "json"
    GOOGLE_CLOUD_PROJECT        = var.project
    GOOGLE_CLOUD_LOCATION       = var.vertex_location
  }

  api_env = merge(local.common_env, {
    GENMEDIA_WORKERS                 = "0"
    GENMEDIA_CORS_ORIGINS            = join(",", var.cors_origins)
    GENMEDIA_SIGNING_SERVICE_ACCOUNT = google_service_account.api.email
  }, var.extra_env)

  worker_env = merge(local.common_env, {
    GENMEDIA_WORKERS = tostring(var.worker_concurrency)
  }, var.extra_env)
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
