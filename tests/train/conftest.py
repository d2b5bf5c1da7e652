import pytest


@pytest.fixture(scope="session")
def tiny_text_encoder():
    """One MiniLM instance shared by the training tests (loading it is the slow part)."""
    from rrsis_engine.model.text_encoder import TextEncoder

    return TextEncoder("minilm-l6", dim=128)
