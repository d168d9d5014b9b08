"""Gymnasium environments of semrl (the SemanticQP environment is registered here)."""
