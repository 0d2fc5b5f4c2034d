"""Where data lives (local paths and URIs, atomic durable publish, the model cache) and Parquet I/O."""
