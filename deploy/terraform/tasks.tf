# The Cloud Tasks queue for GENMEDIA_QUEUE=cloudtasks. Until that adapter is part of the build the
# services run GENMEDIA_QUEUE=docstore (the worker claims QUEUED job documents) and this queue
# stays empty; the API may already enqueue on it, and nothing else may.

resource "google_cloud_tasks_queue" "jobs" {
  project  = var.project
  name     = "genmedia-jobs"
  location = var.region

  rate_limits {
    max_concurrent_dispatches = 50
    max_dispatches_per_second = 20
  }

  retry_config {
    max_attempts  = 5
    min_backoff   = "1s"
    max_backoff   = "60s"
    max_doublings = 4
  }

  depends_on = [google_project_service.required]
}

resource "google_cloud_tasks_queue_iam_member" "api_enqueues" {
  project  = var.project
  location = google_cloud_tasks_queue.jobs.location
  name     = google_cloud_tasks_queue.jobs.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.api.email}"
}
