"""Entity plugins: the business objects synced between Sage 50FR and Sales Management."""
