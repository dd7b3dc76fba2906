"""`gitconf agent`: a sidecar that renders config files and runs reload commands.

`config` reads agent.yaml, `render` turns a config into a file's bytes, `files` puts a file
in place (check, atomic rename, reload), `run` is the loop and `command` the CLI.
"""
