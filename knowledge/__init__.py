"""Knowledge: document chunking, indexing and tenant-scoped retrieval over Qdrant."""
