"""Security regression tests: each broken promise of issue 10, kept from coming back."""
