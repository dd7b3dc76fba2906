"""Push webhooks from Git hosts: verify each host's signature, parse its push, poll at once."""
