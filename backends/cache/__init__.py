"""Where the identical-request cache keeps its entries: Redis, or the docstore."""
