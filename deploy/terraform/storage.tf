# The private media bucket: no public object, ever. Clients download through V4 signed URLs that
# the API signs as its own service account (IAM signBlob).

resource "google_storage_bucket" "media" {
  project                     = var.project
  name                        = local.bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = false
  }

  # Soft-deleted media wait under trash/ for the 30-day restore window, then go.
  lifecycle_rule {
    condition {
      age            = 30
      matches_prefix = ["trash/"]
    }
    action {
      type = "Delete"
    }
  }

  # Scratch objects (uploads being checked, exports being assembled) never outlive a day.
  lifecycle_rule {
    condition {
      age            = 1
      matches_prefix = ["tmp/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  # Browsers of the configured origins may fetch signed URLs (fetch/XHR; <img> and <video> need no CORS)
  # and send uploads: POST the signed resumable start, read its Location, PUT the bytes there.
  dynamic "cors" {
    for_each = length(var.cors_origins) > 0 ? [var.cors_origins] : []
    content {
      origin          = cors.value
      method          = ["GET", "HEAD", "POST", "PUT"]
      response_header = ["Content-Type", "Content-Length", "Content-Range", "Content-Disposition", "ETag", "Location", "x-goog-resumable", "x-goog-content-length-range"]
      max_age_seconds = 3600
    }
  }

  depends_on = [google_project_service.required]
}

# Both services read and write media; neither may touch any other bucket.
resource "google_storage_bucket_iam_member" "media_object_admin" {
  for_each = local.runtime_accounts

  bucket = google_storage_bucket.media.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${each.value}"
}
