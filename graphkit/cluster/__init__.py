"""graphkit.cluster"""
