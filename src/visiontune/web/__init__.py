"""What visiontune's three web apps (the endpoint in ``serve/``, the labeling app in ``label/``, the studio
in ``studio/``) share, so each app only wires it:

- ``errors``    one reply shape for every error, and the handlers that produce it
- ``security``  the guard middleware (Host allow-list, cross-site refusal, body limits, headers), the bind
                policy, the link builder
- ``auth``      the ways in, as FastAPI dependencies: API key, session cookie + CSRF, capability link
- ``paths``     the data roots every path and manifest reference the apps open must stay inside
- ``templates`` Jinja2 (autoescaped) for every HTML page
- ``app``       how an app is built from the above

This package sits below the apps and imports none of them."""
