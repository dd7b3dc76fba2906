"""Plain functions that do the server's background work; APScheduler only calls them."""
