# Keeps a Predict instance warm: every few minutes a warm-up message goes through the same topic
# and push subscription as a job, and Predict only loads its model. Not made when Predict keeps a
# minimum instance or the schedule is "".
resource "google_cloud_scheduler_job" "warmup" {
  count = local.warmup_enabled ? 1 : 0

  name        = "${local.prefix}-warmup"
  region      = var.region
  description = "Publishes {\"warmup\":true} so that Predict keeps its model loaded."
  schedule    = var.warmup_schedule
  time_zone   = var.warmup_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.jobs.id
    data       = base64encode(jsonencode({ warmup = true }))
  }

  retry_config {
    retry_count = 0 # the next tick is the retry
  }

  depends_on = [google_pubsub_topic_iam_member.scheduler_publisher]
}
