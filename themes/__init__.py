"""meshtui's themes as data (YAML files and shared TCSS) and the loader of user themes."""
from .loader import BUILTIN_DIR, DEFAULT_THEME, TCSS_PATH, ThemeError, UserThemes, builtin_themes, theme_from_yaml, user_themes_dir

__all__ = ["BUILTIN_DIR", "DEFAULT_THEME", "TCSS_PATH", "ThemeError", "UserThemes", "builtin_themes", "theme_from_yaml", "user_themes_dir"]
