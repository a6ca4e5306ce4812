"""Classic hub record linkage in the clear (evaluation baseline; never runs in the hub service)."""

from crosstally.classic.link import HubLinkage, PersonLink, link_sources

__all__ = ["HubLinkage", "PersonLink", "link_sources"]
