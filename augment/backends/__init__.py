"""Other libraries' generators behind this package's API.

Each backend imports its library only when it is fitted, so that the core
package installs and imports without it.
"""

from .sdv import SDVGenerator

__all__ = ["SDVGenerator"]
