"""Spring Cloud Config compatible routes, so existing Spring clients read gitconf unchanged.

`properties` turns merged configs into Spring's shapes and `names` reads Spring's request
names (both pure); `api` is the Flask blueprint, `cache` keeps its response bodies, `plugin`
installs it into a Server and `openapi` describes its routes.
"""
