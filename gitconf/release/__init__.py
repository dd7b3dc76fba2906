"""Release safety: pins (an environment served from an earlier published revision), and the
routes that set and clear them."""
