# The Cloud Tasks queue for GENMEDIA_QUEUE=cloudtasks (var.queue_mode). In that mode the API (and
# the sweeper in the worker pool) enqueue one task per job delivery; Cloud Tasks POSTs it to the
# tasks worker service's /internal/tasks/run with an OIDC token of the invoker account, which both
# Cloud Run (run.invoker) and the endpoint itself (audience, account, signature) verify. With
# queue_mode = docstore the queue stays empty and the tasks worker service is not created.

resource "google_cloud_tasks_queue" "jobs" {
  project  = var.project
  name     = "genmedia-jobs"
  location = var.region

  rate_limits {
    max_concurrent_dispatches = 50
    max_dispatches_per_second = 20
  }

  # max_attempts matches GENMEDIA_JOB_MAX_ATTEMPTS (3) plus room for deliveries refused while the
  # job's lease was still held elsewhere; the endpoint fails a job delivered past its own maximum.
  retry_config {
    max_attempts  = 5
    min_backoff   = "1s"
    max_backoff   = "60s"
    max_doublings = 4
  }

  depends_on = [google_project_service.required]
}

# The API enqueues new jobs; the worker pool's sweeper re-enqueues jobs whose lease expired.
resource "google_cloud_tasks_queue_iam_member" "enqueuers" {
  for_each = local.runtime_accounts

  project  = var.project
  location = google_cloud_tasks_queue.jobs.location
  name     = google_cloud_tasks_queue.jobs.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${each.value}"
}

moved {
  from = google_cloud_tasks_queue_iam_member.api_enqueues
  to   = google_cloud_tasks_queue_iam_member.enqueuers["api"]
}

# The identity Cloud Tasks delivers as: it may invoke the tasks worker service and nothing else.
resource "google_service_account" "tasks_invoker" {
  project      = var.project
  account_id   = "genmedia-tasks-invoker"
  display_name = "GenMedia Studio Cloud Tasks invoker"

  depends_on = [google_project_service.required]
}

# Creating a task that carries an OIDC token for the invoker needs actAs on the invoker account.
resource "google_service_account_iam_member" "enqueuers_act_as_invoker" {
  for_each = local.runtime_accounts

  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${each.value}"
}

# The tasks worker service: `genmedia serve` with the task endpoint, reachable only with the invoker's
# token. A delivery runs its job within the request, so the timeout is the longest job (30 min,
# also Cloud Tasks' longest dispatch deadline) and each instance takes a few jobs at a time.
resource "google_cloud_run_v2_service" "tasks_worker" {
  count = var.queue_mode == "cloudtasks" ? 1 : 0

  project             = var.project
  name                = "genmedia-tasks-worker"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.worker.email
    timeout                          = "1800s"
    max_instance_request_concurrency = var.worker_concurrency

    scaling {
      min_instance_count = 0
      max_instance_count = var.tasks_worker_max_instances
    }

    containers {
      image   = var.image
      command = ["genmedia"]
      args    = ["serve"]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "2"
          memory = "2Gi"
        }
        cpu_idle = false # jobs keep running (and renewing their lease) between requests' bytes
      }

      dynamic "env" {
        for_each = local.tasks_worker_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.webhook_secret == null ? [] : [var.webhook_secret]
        content {
          name = "GENMEDIA_WEBHOOK_SECRET"
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      startup_probe {
        period_seconds    = 2
        failure_threshold = 30
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [
    google_project_service.required,
    google_project_iam_member.datastore_user,
    google_project_iam_member.worker_vertex,
    google_storage_bucket_iam_member.media_object_admin,
    google_secret_manager_secret_iam_member.webhook_secret,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "tasks_invoker_runs_worker" {
  count = var.queue_mode == "cloudtasks" ? 1 : 0

  project  = var.project
  location = google_cloud_run_v2_service.tasks_worker[0].location
  name     = google_cloud_run_v2_service.tasks_worker[0].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.tasks_invoker.email}"
}
