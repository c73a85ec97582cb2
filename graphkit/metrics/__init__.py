"""graphkit.metrics"""
