terraform {
  # 1.9 for validations that refer to other variables; 1.7 for mock providers in terraform test.
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The version whose schema `make terraform-check` validates against; raise both together.
      version = "8.0.0"
    }
  }

  # The state lives in a Cloud Storage bucket made once by terraform/bootstrap; its name is given
  # at init: terraform init -backend-config="bucket=STATE_BUCKET".
  backend "gcs" {
    prefix = "text2brain"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app        = "text2brain"
    managed-by = "terraform"
  }
}
