mock_provider "google" {}

variables {
  project_id        = "t2b-test-project"
  github_owner      = "text2brain"
  github_repository = "text2brain"
}

run "trigger_and_deployer" {
  command = apply

  assert {
    condition     = google_cloudbuild_trigger.deploy.filename == "cloudbuild.yaml" && google_cloudbuild_trigger.deploy.service_account == google_service_account.deployer.id
    error_message = "The trigger must run cloudbuild.yaml as the deployer account."
  }
  assert {
    condition = (google_cloudbuild_trigger.deploy.substitutions["_STATE_BUCKET"] == google_storage_bucket.state.name &&
      google_cloudbuild_trigger.deploy.substitutions["_DEPLOY_BRANCH"] == "main" &&
    google_cloudbuild_trigger.deploy.substitutions["_DATA_URI"] == "gs://t2b-test-project-text2brain-data/data")
    error_message = "The trigger must pass the state bucket, the data and the deploy branch."
  }
  assert {
    condition     = length([for r in local.deployer_roles : r if contains(["roles/owner", "roles/editor"], r)]) == 0 && length(google_project_iam_member.deployer) == length(local.deployer_roles)
    error_message = "The deployer must not be an owner or editor."
  }
  assert {
    condition     = google_storage_bucket.state.versioning[0].enabled && google_storage_bucket.state.public_access_prevention == "enforced"
    error_message = "The state bucket must be private and versioned."
  }
}

run "bad_project" {
  command = plan
  variables { project_id = "X" }
  expect_failures = [var.project_id]
}
