# Prediction jobs {id, text, model_version} and warm-ups {"warmup": true}, published by Query and
# by the scheduler.
resource "google_pubsub_topic" "jobs" {
  name = "${local.prefix}-jobs"

  depends_on = [google_project_service.apis]
}

# Jobs that failed max_delivery_attempts times, kept for inspection (and replay by hand).
resource "google_pubsub_topic" "dead_letter" {
  name = "${local.prefix}-jobs-dead-letter"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${local.prefix}-jobs-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "604800s" # 7 days (Pub/Sub keeps up to 31)
  retain_acked_messages      = true
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = "" # never expires, however long nobody pulls
  }
}

# Predict's trigger: our own push subscription rather than an Eventarc trigger, whose subscription
# cannot carry a dead-letter policy. Pub/Sub sends the standard push envelope with an OIDC token of
# the push service account; Predict (an HTTP function) reads that envelope itself, as in the local
# stack, and gives a job up after 5 failed deliveries, before this policy's 10.
resource "google_pubsub_subscription" "predict" {
  name  = "${local.prefix}-predict"
  topic = google_pubsub_topic.jobs.id

  # For push delivery this is also how long Pub/Sub waits for Predict's answer.
  ack_deadline_seconds       = var.predict_timeout_seconds
  message_retention_duration = "604800s" # an accepted job waits up to 7 days for Predict

  push_config {
    push_endpoint = google_cloudfunctions2_function.predict.service_config[0].uri

    oidc_token {
      service_account_email = data.google_service_account.push.email
      audience              = google_cloudfunctions2_function.predict.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  # The Pub/Sub service agent must be able to forward to the dead-letter topic before the policy
  # can work.
  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}
