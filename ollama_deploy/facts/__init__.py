"""Every pyinfra fact the deploy reads, in one package."""
