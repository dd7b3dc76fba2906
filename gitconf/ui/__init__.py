"""The dashboard at /ui/: server-rendered pages over the JSON API's documents."""
