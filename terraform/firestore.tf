# One document per (model version, normalised query) in the "maps" collection is both the cache
# and the job's state; hit counts are sharded in its "hits" subcollection. The code only reads
# documents by ID and sums one subcollection, which Firestore's automatic single-field indexes
# serve: no composite index and no TTL policy are needed.
resource "google_firestore_database" "main" {
  name                    = "(default)"
  location_id             = coalesce(var.firestore_location, var.region)
  type                    = "FIRESTORE_NATIVE"
  concurrency_mode        = "OPTIMISTIC"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.apis]
}

# The result (articles, terms, peaks) is never queried: not indexing it saves an index write per
# nested value on every finished map.
resource "google_firestore_field" "result_unindexed" {
  database   = google_firestore_database.main.name
  collection = local.common_env.T2B_COLLECTION
  field      = "result"

  index_config {}
}
