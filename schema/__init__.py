"""The GraphQL schema: strawberry types, inputs, enums, errors and the Schema with its extensions."""
