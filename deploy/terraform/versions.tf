terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.40, < 8.0"
    }
  }

  # Keep state in a bucket of its own (not the media bucket), e.g.:
  # backend "gcs" {
  #   bucket = "PROJECT-tfstate"
  #   prefix = "genmedia"
  # }
}

provider "google" {
  project = var.project
  region  = var.region
}
