"""HTTP and WebSocket entry points of the GraphQL API."""
