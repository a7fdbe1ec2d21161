"""What every layer shares and nothing else: errors, file writing, registries, runtime."""
