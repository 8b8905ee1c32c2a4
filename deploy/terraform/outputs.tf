output "api_url" {
  description = "The API's base URL: GraphQL at /v1/graphql (HTTP and WebSocket)."
  value       = google_cloud_run_v2_service.api.uri
}

output "media_bucket" {
  description = "GENMEDIA_BUCKET."
  value       = google_storage_bucket.media.name
}

output "firestore_database" {
  description = "GENMEDIA_FIRESTORE_DATABASE."
  value       = google_firestore_database.main.name
}

output "firestore_index_count" {
  description = "Composite indexes declared from ../firestore.indexes.json."
  value       = length(google_firestore_index.composite)
}

output "image_repository" {
  description = "Where to push the studio image."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}

output "api_service_account" {
  description = "The API's identity (GENMEDIA_SIGNING_SERVICE_ACCOUNT)."
  value       = google_service_account.api.email
}

output "worker_service_account" {
  description = "The worker's identity."
  value       = google_service_account.worker.email
}

output "jobs_queue" {
  description = "The Cloud Tasks queue for GENMEDIA_QUEUE=cloudtasks."
  value       = google_cloud_tasks_queue.jobs.id
}

output "tasks_invoker_service_account" {
  description = "GENMEDIA_CLOUDTASKS_SERVICE_ACCOUNT: the account Cloud Tasks' OIDC tokens name."
  value       = google_service_account.tasks_invoker.email
}

output "tasks_worker_url" {
  description = "GENMEDIA_CLOUDTASKS_WORKER_URL (queue_mode = cloudtasks)."
  value       = var.queue_mode == "cloudtasks" ? local.tasks_worker_url : null
}
