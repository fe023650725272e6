"""The mapping layer: entity classes onto Core tables."""
