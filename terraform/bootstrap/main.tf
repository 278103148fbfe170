# Run once, by a person with the project's owner role, before the first build: the bucket of the
# deployment's Terraform state, the bucket of the model data the build reads, the service accounts
# the functions run and build as, the account Cloud Build deploys as (with only the roles the
# deployment needs, and the right to act as those four accounts and no other), a test-only account
# for other branches, and the two Cloud Build triggers. Its own state is local (keep
# terraform.tfstate, or move it into the state bucket afterwards).

terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "8.0.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

variable "project_id" {
  description = "The Google Cloud project (its ID)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID: 6 to 30 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "The region of the buckets and of the deployment (the same as the main configuration's)."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "name_prefix" {
  description = "The main configuration's name_prefix."
  type        = string
  default     = "text2brain"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 20 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "github_owner" {
  description = "Owner of the GitHub repository the trigger builds (connected to Cloud Build's GitHub app beforehand)."
  type        = string
}

variable "github_repository" {
  description = "Name of the GitHub repository."
  type        = string
}

variable "deploy_branch" {
  description = "The branch whose builds publish and apply, as the deployer; every other branch is only tested, as an account that cannot change the deployment."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.deploy_branch))
    error_message = "deploy_branch must be a branch name."
  }
}

locals {
  prefix = var.name_prefix

  apis = [
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
  ]

  # What terraform apply of the main configuration does, and no more: create and configure the
  # functions and their services' IAM, buckets, topics, the database, the scheduler, the image
  # repository, the APIs, and with a domain the load balancer and Cloud Armor; plus writing its
  # own build logs. Project IAM is granted separately (below), limited to the roles the main
  # configuration grants; acting as a service account is granted on the four runtime accounts only.
  deployer_roles = [
    "roles/artifactregistry.admin",
    "roles/cloudfunctions.developer",
    "roles/cloudscheduler.admin",
    "roles/compute.loadBalancerAdmin",
    "roles/compute.securityAdmin",
    "roles/datastore.owner",
    "roles/logging.logWriter",
    "roles/pubsub.admin",
    "roles/run.admin",
    "roles/serviceusage.serviceUsageAdmin",
    "roles/storage.admin",
  ]

  # The only roles the main configuration grants on the project (conditioned there).
  project_grantable_roles = ["roles/datastore.user", "roles/logging.logWriter", "roles/storage.objectViewer"]

  # The accounts the functions run and build as (terraform/iam.tf grants their roles).
  runtime_accounts = {
    query   = "text2brain Query function"
    predict = "text2brain Predict function"
    push    = "text2brain Pub/Sub push to Predict"
    build   = "text2brain function builds"
  }
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_storage_bucket" "state" {
  name                        = "${var.project_id}-${local.prefix}-tfstate"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 20
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# The model data in the layout the README describes (neuroquery_model/, neuroquery_corpus/,
# neurosynth/, templates/), uploaded once with gcloud storage cp (README, Deploy).
resource "google_storage_bucket" "data" {
  name                        = "${var.project_id}-${local.prefix}-data"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "deployer" {
  account_id   = "${local.prefix}-deploy"
  display_name = "text2brain Cloud Build deployer"
  depends_on   = [google_project_service.apis]
}

resource "google_project_iam_member" "deployer" {
  for_each = toset(local.deployer_roles)

  project = var.project_id
  role    = each.value
  member  = google_service_account.deployer.member
}

# The deployer may change the project's IAM policy only to grant or revoke the roles the main
# configuration grants: not owner, editor, or any role that would let it escalate.
resource "google_project_iam_member" "deployer_iam" {
  project = var.project_id
  role    = "roles/resourcemanager.projectIamAdmin"
  member  = google_service_account.deployer.member

  condition {
    title       = "text2brain grants only"
    description = "Only the project roles terraform/iam.tf grants."
    expression  = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(${jsonencode(local.project_grantable_roles)})"
  }
}

resource "google_service_account" "runtime" {
  for_each = local.runtime_accounts

  account_id   = "${local.prefix}-${each.key}"
  display_name = each.value
  depends_on   = [google_project_service.apis]
}

# Deploying a function that runs (or builds) as an account needs the right to act as it.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = google_service_account.runtime

  service_account_id = each.value.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}

# Pub/Sub's service agent mints the push account's OIDC tokens for the push subscription.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.runtime["push"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Builds of other branches run as this account: it can read the model data and write logs, and
# cannot change the deployment (a pushed branch controls its own build steps).
resource "google_service_account" "ci" {
  account_id   = "${local.prefix}-ci"
  display_name = "text2brain Cloud Build tests"
  depends_on   = [google_project_service.apis]
}

resource "google_project_iam_member" "ci_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.ci.member
}

resource "google_storage_bucket_iam_member" "ci_data" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.ci.member
}

locals {
  substitutions = {
    _REGION        = var.region
    _NAME_PREFIX   = local.prefix
    _STATE_BUCKET  = google_storage_bucket.state.name
    _DATA_URI      = "gs://${google_storage_bucket.data.name}/data"
    _DEPLOY_BRANCH = var.deploy_branch
  }
}

# The deploy branch, as the deployer: test, publish the model, plan, apply.
resource "google_cloudbuild_trigger" "deploy" {
  name            = "${local.prefix}-deploy"
  location        = "global"
  description     = "Tests ${var.deploy_branch}, publishes the model and applies the deployment."
  filename        = "cloudbuild.yaml"
  service_account = google_service_account.deployer.id
  substitutions   = local.substitutions

  github {
    owner = var.github_owner
    name  = var.github_repository
    push {
      branch = "^${replace(var.deploy_branch, ".", "\\.")}$"
    }
  }

  depends_on = [google_project_iam_member.deployer]
}

# Every other branch, as the test-only account: cloudbuild.yaml's Terraform steps do nothing there.
resource "google_cloudbuild_trigger" "check" {
  name            = "${local.prefix}-check"
  location        = "global"
  description     = "Tests every branch but ${var.deploy_branch}."
  filename        = "cloudbuild.yaml"
  service_account = google_service_account.ci.id
  substitutions   = local.substitutions

  github {
    owner = var.github_owner
    name  = var.github_repository
    push {
      branch       = "^${replace(var.deploy_branch, ".", "\\.")}$"
      invert_regex = true
    }
  }

  depends_on = [google_project_iam_member.ci_logs]
}

output "state_bucket" {
  description = "terraform init -backend-config=\"bucket=…\" of the main configuration."
  value       = google_storage_bucket.state.name
}

output "data_uri" {
  description = "Where the build reads the model data: upload the data folder here."
  value       = "gs://${google_storage_bucket.data.name}/data"
}

output "deployer" {
  description = "The service account Cloud Build deploys as."
  value       = google_service_account.deployer.email
}

output "deployer_roles" {
  description = "The project roles of the deployer."
  value       = local.deployer_roles
}

output "triggers" {
  description = "The Cloud Build triggers: deploy (the deploy branch) and check (the others)."
  value       = { deploy = google_cloudbuild_trigger.deploy.name, check = google_cloudbuild_trigger.check.name }
}

output "runtime_accounts" {
  description = "The accounts the functions run and build as."
  value       = { for k, a in google_service_account.runtime : k => a.email }
}
