"""Class: a teacher opens a room, sets the lesson step the class follows and watches the class board."""
from __future__ import annotations

from dashboard.room_page import class_page

class_page()
