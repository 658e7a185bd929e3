"""lettre: an asyncio-native email client."""

__version__ = "0.1.0"
