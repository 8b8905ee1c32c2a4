# One service account per service, each with only what its process calls.
#
#   api     Firestore (its database only), the media bucket, signBlob as itself (signed URLs),
#           enqueueing on the jobs queue.
#   worker  Firestore (its database only), the media bucket, Vertex AI, re-enqueueing swept jobs.
#   tasks_invoker (tasks.tf)  invokes the tasks worker service for Cloud Tasks, nothing else.

locals {
  runtime_accounts = {
    api    = google_service_account.api.email
    worker = google_service_account.worker.email
  }
}

resource "google_service_account" "api" {
  project      = var.project
  account_id   = "genmedia-api"
  display_name = "GenMedia Studio API"

  depends_on = [google_project_service.required]
}

resource "google_service_account" "worker" {
  project      = var.project
  account_id   = "genmedia-worker"
  display_name = "GenMedia Studio worker"

  depends_on = [google_project_service.required]
}

resource "google_project_iam_member" "datastore_user" {
  for_each = local.runtime_accounts

  project = var.project
  role    = "roles/datastore.user"
  member  = "serviceAccount:${each.value}"

  condition {
    title       = "genmedia-database-only"
    description = "Only the studio's Firestore database."
    expression  = "resource.name == \"projects/${var.project}/databases/${var.firestore_database}\""
  }
}

# Generation runs in the worker only; the API never calls a model.
resource "google_project_iam_member" "worker_vertex" {
  project = var.project
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

# Signed media URLs: on Cloud Run there is no key file, so the API signs through IAM signBlob as
# itself (GENMEDIA_SIGNING_SERVICE_ACCOUNT), which needs the token creator role on its own account.
resource "google_service_account_iam_member" "api_signs_as_itself" {
  service_account_id = google_service_account.api.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.api.email}"
}

resource "google_secret_manager_secret_iam_member" "webhook_secret" {
  for_each = {
    for name, email in local.runtime_accounts : name => email if var.webhook_secret != null
  }

  project   = var.project
  secret_id = var.webhook_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value}"
}
