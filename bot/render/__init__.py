"""Answer text for Discord: math as Unicode and images, splitting, uploads."""
