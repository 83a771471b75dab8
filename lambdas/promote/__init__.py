"""Promote: training job finished -> register, compare, deploy; endpoint deployment finished -> champion."""
