mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
}

variables {
  project_id        = "t2b-test-project"
  github_owner      = "text2brain"
  github_repository = "text2brain"
}

run "triggers" {
  command = apply

  assert {
    condition = (google_cloudbuild_trigger.deploy.filename == "cloudbuild.yaml" &&
      google_cloudbuild_trigger.deploy.service_account == google_service_account.deployer.id &&
      google_cloudbuild_trigger.deploy.github[0].push[0].branch == "^main$" &&
    !coalesce(google_cloudbuild_trigger.deploy.github[0].push[0].invert_regex, false))
    error_message = "Only the deploy branch may build as the deployer."
  }
  assert {
    condition = (google_cloudbuild_trigger.check.service_account == google_service_account.ci.id &&
      google_cloudbuild_trigger.check.github[0].push[0].branch == "^main$" &&
    google_cloudbuild_trigger.check.github[0].push[0].invert_regex)
    error_message = "Every other branch must build as the test-only account."
  }
  assert {
    condition = (google_cloudbuild_trigger.deploy.substitutions["_STATE_BUCKET"] == google_storage_bucket.state.name &&
      google_cloudbuild_trigger.deploy.substitutions["_DEPLOY_BRANCH"] == "main" &&
      google_cloudbuild_trigger.deploy.substitutions["_DATA_URI"] == "gs://t2b-test-project-text2brain-data/data" &&
    google_cloudbuild_trigger.check.substitutions == google_cloudbuild_trigger.deploy.substitutions)
    error_message = "The triggers must pass the state bucket, the data and the deploy branch."
  }
}

run "deployer_cannot_escalate" {
  command = apply

  assert {
    condition = length([for r in local.deployer_roles : r if contains([
      "roles/owner", "roles/editor", "roles/iam.serviceAccountAdmin", "roles/iam.serviceAccountUser",
      "roles/iam.serviceAccountTokenCreator", "roles/resourcemanager.projectIamAdmin",
    ], r)]) == 0 && length(google_project_iam_member.deployer) == length(local.deployer_roles)
    error_message = "The deployer's unconditioned project roles must not include owner, editor, or any that can grant roles or act as any account."
  }
  assert {
    condition = (google_project_iam_member.deployer_iam.role == "roles/resourcemanager.projectIamAdmin" &&
      strcontains(google_project_iam_member.deployer_iam.condition[0].expression, "modifiedGrantsByRole") &&
      strcontains(google_project_iam_member.deployer_iam.condition[0].expression, "\"roles/datastore.user\"") &&
    !strcontains(google_project_iam_member.deployer_iam.condition[0].expression, "owner"))
    error_message = "The deployer may grant on the project only the roles the main configuration grants."
  }
  assert {
    condition = (toset(keys(google_service_account_iam_member.deployer_acts_as)) == toset(["query", "predict", "push", "build"]) &&
      alltrue([for m in google_service_account_iam_member.deployer_acts_as : m.role == "roles/iam.serviceAccountUser" && m.member == google_service_account.deployer.member]) &&
    google_service_account_iam_member.deployer_acts_as["push"].service_account_id == google_service_account.runtime["push"].name)
    error_message = "The deployer may act as the four runtime accounts, each granted on that account."
  }
  assert {
    condition     = google_service_account_iam_member.pubsub_token_creator.member == "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com" && google_service_account_iam_member.pubsub_token_creator.service_account_id == google_service_account.runtime["push"].name
    error_message = "Pub/Sub's agent must be able to mint the push account's tokens."
  }
  assert {
    condition     = toset([for k, a in google_service_account.runtime : a.account_id]) == toset(["text2brain-query", "text2brain-predict", "text2brain-push", "text2brain-build"])
    error_message = "The runtime accounts must have the names terraform/iam.tf reads."
  }
}

run "buckets" {
  command = apply

  assert {
    condition     = google_storage_bucket.state.versioning[0].enabled && google_storage_bucket.state.public_access_prevention == "enforced" && google_storage_bucket.data.public_access_prevention == "enforced"
    error_message = "The state and data buckets must be private, the state versioned."
  }
  assert {
    condition     = google_storage_bucket_iam_member.ci_data.bucket == google_storage_bucket.data.name && google_storage_bucket_iam_member.ci_data.role == "roles/storage.objectViewer"
    error_message = "The test account may only read the model data."
  }
}

run "bad_project" {
  command = plan
  variables { project_id = "X" }
  expect_failures = [var.project_id]
}

run "bad_branch" {
  command = plan
  variables { deploy_branch = "main; rm -rf" }
  expect_failures = [var.deploy_branch]
}
