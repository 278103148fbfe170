# The model bundle and the ONNX Runtime library, written by `text2brain model publish` and read
# by both functions. Objects are content-addressed (models/VERSION/, onnxruntime/SHA256/), so
# nothing is ever replaced; old model versions stay until deleted by hand.
resource "google_storage_bucket" "models" {
  name                        = "${var.project_id}-${local.prefix}-models"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.apis]
}

# The maps and previews Predict writes; private, Query serves them (with long cache headers).
# Each object is immutable and named by its model version and query hash, and a done Firestore
# document points at it, so no rule deletes them: a deleted map would be a 404 for good. Only the
# uploads (maps people send to decode, under uploads/) expire.
resource "google_storage_bucket" "results" {
  name                        = "${var.project_id}-${local.prefix}-results"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  # Uploaded maps are needed only until their decoding is done (its resampled map and result
  # stay); people's files are not kept longer than that needs.
  lifecycle_rule {
    condition {
      age            = var.upload_retention_days
      matches_prefix = ["uploads/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# The functions' source archives. Cloud Build copies an archive when it builds a function, so old
# archives are only kept for a while; Terraform uploads the current one again if it is gone.
resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-${local.prefix}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# One archive for both functions (FUNCTION_TARGET picks the function), named by its content so
# that a new source is a new object and the functions are rebuilt only when it changes.
resource "google_storage_bucket_object" "source" {
  name         = "function-source-${filesha256(var.function_source_zip)}.zip"
  bucket       = google_storage_bucket.source.name
  source       = var.function_source_zip
  content_type = "application/zip"

  # The functions are pointed at the new archive before the old one goes.
  lifecycle {
    create_before_destroy = true
  }
}
