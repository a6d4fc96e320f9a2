"""The labeling app's routes: ``worker`` (a worker's page and API, by the worker's secret link) and ``owner``
(the owner's page, by the owner's link); ``label.app.create_app`` wires them."""
