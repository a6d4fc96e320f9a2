"""The studio's routes, one module per concern; ``studio.app.create_app`` wires them behind the session."""
