# api: the GraphQL API over HTTP and WebSocket, no workers (GENMEDIA_WORKERS=0).
# worker: `genmedia worker`, claiming QUEUED jobs and running them. It listens on no port, so it is
# a Cloud Run worker pool (the Cloud Run resource for pull workloads) rather than a service.

resource "google_cloud_run_v2_service" "api" {
  project             = var.project
  name                = "genmedia-api"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.api.email
    timeout                          = "3600s"
    max_instance_request_concurrency = 80
    session_affinity                 = true

    scaling {
      min_instance_count = var.api_min_instances
      max_instance_count = var.api_max_instances
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
          cpu    = "1"
          memory = "1Gi"
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.api_env
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
        initial_delay_seconds = 0
        period_seconds        = 2
        failure_threshold     = 30
        http_get {
          path = "/healthz"
        }
      }

      liveness_probe {
        period_seconds    = 30
        failure_threshold = 3
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [
    google_project_service.required,
    google_project_iam_member.datastore_user,
    google_storage_bucket_iam_member.media_object_admin,
    google_service_account_iam_member.api_signs_as_itself,
    google_secret_manager_secret_iam_member.webhook_secret,
  ]
}

# The API authenticates every request itself (bearer ID tokens or API keys).
resource "google_cloud_run_v2_service_iam_member" "api_public" {
  count = var.public_api ? 1 : 0

  project  = var.project
  location = google_cloud_run_v2_service.api.location
  name     = google_cloud_run_v2_service.api.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_worker_pool" "worker" {
  project             = var.project
  name                = "genmedia-worker"
  location            = var.region
  deletion_protection = var.deletion_protection

  scaling {
    scaling_mode          = "MANUAL"
    manual_instance_count = var.worker_instances
  }

  template {
    service_account = google_service_account.worker.email

    containers {
      image   = var.image
      command = ["genmedia"]
      args    = ["worker"]

      resources {
        limits = {
          cpu    = "2"
          memory = "2Gi"
        }
      }

      dynamic "env" {
        for_each = local.worker_env
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
