resource "google_firestore_database" "main" {
  project                           = var.project
  name                              = var.firestore_database
  location_id                       = coalesce(var.firestore_location, var.region)
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.required]
}

# The composite indexes the studio's queries need, straight from ../firestore.indexes.json
# (derived from the code by ../indexes.py; a unit test keeps the two in step).
resource "google_firestore_index" "composite" {
  for_each = local.firestore_indexes

  project     = var.project
  database    = google_firestore_database.main.name
  collection  = each.value.collectionGroup
  query_scope = try(each.value.queryScope, "COLLECTION")

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.fieldPath
      order        = try(fields.value.order, null)
      array_config = try(fields.value.arrayConfig, null)
    }
  }
}

# Fields no query reads, kept out of the automatic single-field indexes (an empty index_config
# turns them off), so writing an asset's embedding does not pay for index entries.
resource "google_firestore_field" "unindexed" {
  for_each = local.firestore_unindexed

  project    = var.project
  database   = google_firestore_database.main.name
  collection = each.value.collectionGroup
  field      = each.value.fieldPath

  index_config {}
}
