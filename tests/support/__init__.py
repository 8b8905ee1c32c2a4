"""Helpers shared by the API and e2e tests: a real server process and a GraphQL client."""
