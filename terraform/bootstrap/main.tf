# Run once, by a person with the project's owner role, before the first build: the bucket of the
# deployment's Terraform state, the bucket of the model data the build reads, the service account
# Cloud Build deploys as (with only the roles the deployment needs), and the Cloud Build trigger.
# Its own state is local (keep terraform.tfstate, or move it into the state bucket afterwards).

terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 8.0"
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
  description = "The branch whose builds apply (others test and plan only)."
  type        = string
  default     = "main"
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
  # functions, their services' IAM, the service accounts (and use them), project IAM grants for
  # Firestore and logs, buckets, topics, the database, the scheduler, the image repository, the
  # APIs, and with a domain the load balancer and Cloud Armor; plus writing its own build logs.
  deployer_roles = [
    "roles/artifactregistry.admin",
    "roles/cloudfunctions.developer",
    "roles/cloudscheduler.admin",
    "roles/compute.loadBalancerAdmin",
    "roles/compute.securityAdmin",
    "roles/datastore.owner",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountUser",
    "roles/logging.logWriter",
    "roles/pubsub.admin",
    "roles/resourcemanager.projectIamAdmin",
    "roles/run.admin",
    "roles/serviceusage.serviceUsageAdmin",
    "roles/storage.admin",
  ]
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
# neurosynth/, templates/), uploaded once with scripts/fetch-model-data.sh or gcloud storage cp.
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

resource "google_cloudbuild_trigger" "deploy" {
  name            = "${local.prefix}-deploy"
  location        = "global"
  description     = "Tests every push; on ${var.deploy_branch}, publishes the model and applies the deployment."
  filename        = "cloudbuild.yaml"
  service_account = google_service_account.deployer.id

  github {
    owner = var.github_owner
    name  = var.github_repository
    push {
      branch = ".*"
    }
  }

  substitutions = {
    _REGION        = var.region
    _NAME_PREFIX   = local.prefix
    _STATE_BUCKET  = google_storage_bucket.state.name
    _DATA_URI      = "gs://${google_storage_bucket.data.name}/data"
    _DEPLOY_BRANCH = var.deploy_branch
  }

  depends_on = [google_project_iam_member.deployer]
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

output "trigger" {
  description = "The Cloud Build trigger."
  value       = google_cloudbuild_trigger.deploy.name
}
