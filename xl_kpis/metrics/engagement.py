"""Engagement KPIs: how viewers respond to the content."""

from __future__ import annotations

import numpy as np

from ._kpi import COUNT, as_float_array, check_domain, kpi, safe_div

__all__ = ["total_views", "engagement_rate", "completion_rate", "profile_visit_rate", "ctr"]


@kpi(likes=COUNT, comments=COUNT, shares=COUNT, views=COUNT, saves=COUNT)
def engagement_rate(likes, comments, shares, views, saves=0):
    """Engagement rate: interactions per view.

    Parameters
    ----------
    likes : float or array_like
        Likes, >= 0.
    comments : float or array_like
        Comments, >= 0.
    shares : float or array_like
        Shares, >= 0.
    views : float or array_like
        The denominator (>= 0): video views by default; pass impressions or
        followers for the other conventions.
    saves : float or array_like, optional
        Saves (favourites), 0 by default (TikTok's own formula leaves them out).

    Returns
    -------
    float or ndarray
        A fraction (0.05 is 5 %); NaN where ``views`` is 0.

    Warnings
    --------
    The denominator is the caller's choice: by views (TikTok's definition, the
    default in the template), by followers (Rival IQ, Conviva) or by
    impressions (paid dashboards) give very different numbers; compare a rate
    only with benchmarks that use the same denominator.

    Notes
    -----
    .. math:: ER = (likes + comments + shares + saves) / views

    References
    ----------
    TikTok Ads help, "About TikTok One campaign reporting"
    (ads.tiktok.com/help/article/about-tiktok-one-campaign-reporting); see
    ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> engagement_rate(300, 40, 60, 10_000)
    0.04
    >>> engagement_rate(300, 40, 60, 10_000, saves=100)
    0.05
    >>> engagement_rate([300, 5], [40, 0], [60, 0], [10_000, 0])
    array([0.04,  nan])
    """
    return safe_div(likes + comments + shares + saves, views)


@kpi(completed_views=COUNT, views=COUNT)
def completion_rate(completed_views, views):
    """Video completion rate: share of views watched to the end.

    Parameters
    ----------
    completed_views : float or array_like
        Views that reached 100 % (``Video views at 100%``), >= 0.
    views : float or array_like
        Video views (plays), >= 0.

    Returns
    -------
    float or ndarray
        A fraction; NaN where ``views`` is 0.

    Warnings
    --------
    Some tools use average watch time / video length, or P50 / 2-second views;
    this is P100 / plays.  Completion strongly depends on video length.

    Notes
    -----
    .. math:: completion = completed\\_views / views

    References
    ----------
    TikTok Ads metric definitions (``Video views at 100%``, ``Video views``);
    ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> completion_rate(450, 1_000)
    0.45
    >>> completion_rate(0, 0)
    nan
    """
    return safe_div(completed_views, views)


@kpi(profile_visits=COUNT, views=COUNT)
def profile_visit_rate(profile_visits, views):
    """Profile visit rate: profile visits per view.

    Parameters
    ----------
    profile_visits : float or array_like
        Visits to the profile from the video or ad, >= 0.
    views : float or array_like
        Video views (organic) or impressions (paid), >= 0.

    Returns
    -------
    float or ndarray
        A fraction; NaN where ``views`` is 0.

    Warnings
    --------
    Paid reporting divides by impressions, organic by video views: the caller
    chooses by what it passes as ``views``.

    Notes
    -----
    .. math:: PVR = profile\\_visits / views

    References
    ----------
    mLabs help (ajuda.mlabs.com.br), "paid profile visit rate";
    ``docs/kpi-definitions.md`` §1.

    Examples
    --------
    >>> profile_visit_rate(25, 1_000)
    0.025
    """
    return safe_div(profile_visits, views)


@kpi(clicks=COUNT, impressions=COUNT)
def ctr(clicks, impressions):
    """Click-through rate: clicks per impression.

    Parameters
    ----------
    clicks : float or array_like
        Destination clicks (``Clicks (destination)``), >= 0.
    impressions : float or array_like
        Impressions, >= 0.

    Returns
    -------
    float or ndarray
        A fraction (0.012 is 1.2 %); NaN where ``impressions`` is 0.

    Warnings
    --------
    ``CTR (all)`` also counts social clicks (likes, follows); use destination
    clicks to match the benchmarks.

    Notes
    -----
    .. math:: CTR = clicks / impressions

    References
    ----------
    TikTok Ads help, metric definitions (ads.tiktok.com/help/article?aid=10000166).

    Examples
    --------
    >>> ctr(120, 10_000)
    0.012
    >>> ctr([120, 0], [10_000, 0])
    array([0.012,   nan])
    """
    return safe_div(clicks, impressions)


@kpi(shape="aggregate", views=COUNT)
def total_views(views):
    """Views: the total number of video plays (reach of the content).

    Parameters
    ----------
    views : array_like
        Views per video or per day, >= 0; NaN entries (blank cells) are ignored.

    Returns
    -------
    float
        The sum of the views; 0.0 for no data.

    Notes
    -----
    .. math:: views = \\sum_i views_i

    A view is counted each time a video starts playing; replays are not
    counted.  2-second and 6-second views are separate counts.

    References
    ----------
    TikTok Ads help, "Video play" (ads.tiktok.com/help/article/video-play).

    Examples
    --------
    >>> total_views([1_200, 800, float("nan")])
    2000.0
    """
    a = as_float_array("total_views", "views", views)
    check_domain("total_views", "views", a, COUNT)
    return float(np.nansum(a))
