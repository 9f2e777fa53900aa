"""Pure KPI functions (numpy only), grouped as the metrics seed groups them."""

from .brand import follower_growth_rate, share_of_voice, support_query_rate
from .content import content_resonance, top_products
from .engagement import completion_rate, ctr, engagement_rate, profile_visit_rate, total_views
from .lifetime import cac_payback, clv, discounted_clv, ltv_cac
from .loyalty import average_rating, buyer_count, order_count, order_revenue, positive_rating_share, repeat_purchase_rate, review_rate
from .sales import aov, breakeven_roas, cac, conversion_rate, cpa, cpc, cpm, roas, roi

__all__ = [
    # engagement
    "total_views", "engagement_rate", "completion_rate", "profile_visit_rate", "ctr",
    # sales
    "conversion_rate", "aov", "roas", "cac", "cpm", "cpc", "cpa", "roi", "breakeven_roas",
    # lifetime value
    "clv", "discounted_clv", "ltv_cac", "cac_payback",
    # orders, loyalty and feedback
    "order_count", "order_revenue", "buyer_count", "repeat_purchase_rate", "average_rating", "positive_rating_share", "review_rate",
    # product and content
    "top_products", "content_resonance",
    # brand
    "follower_growth_rate", "share_of_voice", "support_query_rate",
]
