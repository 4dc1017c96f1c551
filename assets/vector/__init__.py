"""The vector index: searchable documents from silver, embedded offline, kept in sync in Qdrant."""
