"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 05:17:35.392248+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "scopes <@ ARRAY['read', 'write', 'admin']::varchar[]", name=op.f("api_key_scopes_known_check")
        ),
        sa.CheckConstraint("cardinality(scopes) > 0", name=op.f("api_key_scopes_not_empty_check")),
        sa.PrimaryKeyConstraint("id", name=op.f("api_key_pkey")),
        sa.UniqueConstraint("key_hash", name=op.f("api_key_key_hash_key")),
    )
    op.create_index(op.f("ix_api_key_prefix"), "api_key", ["prefix"], unique=False)
    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("age", sa.SmallInteger(), nullable=True),
        sa.Column("gender", sa.String(length=20), nullable=True),
        sa.Column("occupation", sa.String(length=100), nullable=True),
        sa.Column("zip_code", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("age IS NULL OR age BETWEEN 0 AND 150", name=op.f("app_user_age_range_check")),
        sa.PrimaryKeyConstraint("id", name=op.f("app_user_pkey")),
        sa.UniqueConstraint("external_id", name=op.f("app_user_external_id_key")),
    )
    op.create_table(
        "experiment",
        sa.Column("id", sa.Integer(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="draft", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("name ~ '^[a-z0-9][a-z0-9_-]*$'", name=op.f("experiment_name_slug_check")),
        sa.CheckConstraint(
            "status IN ('draft', 'running', 'stopped')", name=op.f("experiment_status_known_check")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("experiment_pkey")),
        sa.UniqueConstraint("name", name=op.f("experiment_name_key")),
    )
    op.create_table(
        "genre",
        sa.Column("id", sa.SmallInteger(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("genre_pkey")),
        sa.UniqueConstraint("name", name=op.f("genre_name_key")),
    )
    op.create_table(
        "model_version",
        sa.Column("id", sa.Integer(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="candidate", nullable=False),
        sa.Column(
            "metrics",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("artifact_uri", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('candidate', 'champion', 'rejected', 'archived')",
            name=op.f("model_version_status_known_check"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("model_version_pkey")),
        sa.UniqueConstraint("name", "version", name=op.f("model_version_name_version_key")),
    )
    op.create_index(
        "ix_model_version_one_champion",
        "model_version",
        ["name"],
        unique=True,
        postgresql_where=sa.text("status = 'champion'"),
    )
    op.create_table(
        "movie",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=True),
        sa.Column("imdb_id", sa.Integer(), nullable=True),
        sa.Column("tmdb_id", sa.Integer(), nullable=True),
        sa.Column("freebase_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("length(title) > 0", name=op.f("movie_title_not_empty_check")),
        sa.CheckConstraint("year IS NULL OR year BETWEEN 1870 AND 2100", name=op.f("movie_year_range_check")),
        sa.PrimaryKeyConstraint("id", name=op.f("movie_pkey")),
        sa.UniqueConstraint("freebase_id", name=op.f("movie_freebase_id_key")),
        sa.UniqueConstraint("imdb_id", name=op.f("movie_imdb_id_key")),
    )
    op.create_index(op.f("ix_movie_year"), "movie", ["year"], unique=False)
    op.create_table(
        "person",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("freebase_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("person_pkey")),
        sa.UniqueConstraint("freebase_id", name=op.f("person_freebase_id_key")),
    )
    op.create_table(
        "credit",
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.CheckConstraint(
            "role IN ('actor', 'director', 'writer', 'producer', 'executive_producer', 'cinematographer', 'editor', 'composer', 'production_designer', 'costume_designer')",
            name=op.f("credit_role_known_check"),
        ),
        sa.ForeignKeyConstraint(
            ["movie_id"], ["movie.id"], name=op.f("credit_movie_id_fkey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("credit_person_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("movie_id", "person_id", "role", name=op.f("credit_pkey")),
    )
    op.create_index(op.f("ix_credit_person_id"), "credit", ["person_id"], unique=False)
    op.create_table(
        "movie_genre",
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("genre_id", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["genre_id"], ["genre.id"], name=op.f("movie_genre_genre_id_fkey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["movie_id"], ["movie.id"], name=op.f("movie_genre_movie_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("movie_id", "genre_id", name=op.f("movie_genre_pkey")),
    )
    op.create_index(op.f("ix_movie_genre_genre_id"), "movie_genre", ["genre_id"], unique=False)
    op.create_table(
        "movie_tag",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("tagged_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["movie_id"], ["movie.id"], name=op.f("movie_tag_movie_id_fkey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("movie_tag_user_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "movie_id", "tag", name=op.f("movie_tag_pkey")),
    )
    op.create_index(op.f("ix_movie_tag_movie_id"), "movie_tag", ["movie_id"], unique=False)
    op.create_table(
        "rating",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=False),
        sa.Column("rating", sa.REAL(), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "rating >= 0.5 AND rating <= 5 AND rating * 2 = round(rating * 2)",
            name=op.f("rating_half_stars_check"),
        ),
        sa.ForeignKeyConstraint(
            ["movie_id"], ["movie.id"], name=op.f("rating_movie_id_fkey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("rating_user_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "movie_id", name=op.f("rating_pkey")),
    )
    op.create_index("ix_rating_movie_id", "rating", ["movie_id"], unique=False)
    op.create_index("ix_rating_rated_at", "rating", ["rated_at"], unique=False)
    op.create_table(
        "variant",
        sa.Column("id", sa.Integer(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("weight", sa.SmallInteger(), nullable=False),
        sa.Column("is_control", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint("weight BETWEEN 0 AND 100", name=op.f("variant_weight_percent_check")),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiment.id"], name=op.f("variant_experiment_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("variant_pkey")),
        sa.UniqueConstraint("experiment_id", "name", name=op.f("variant_experiment_id_name_key")),
    )
    op.create_table(
        "assignment",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("exposed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("bucket BETWEEN 0 AND 9999", name=op.f("assignment_bucket_range_check")),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name=op.f("assignment_experiment_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variant.id"], name=op.f("assignment_variant_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("experiment_id", "user_id", name=op.f("assignment_pkey")),
    )
    op.create_index(op.f("ix_assignment_variant_id"), "assignment", ["variant_id"], unique=False)
    op.create_table(
        "event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False, start=1), nullable=False),
        sa.Column("event_type", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("movie_id", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.UUID(), nullable=True),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("variant_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.SmallInteger(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "event_type IN ('impression', 'click', 'view', 'rating')",
            name=op.f("event_event_type_known_check"),
        ),
        sa.CheckConstraint(
            "position IS NULL OR position >= 0", name=op.f("event_position_non_negative_check")
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiment.id"], name=op.f("event_experiment_id_fkey"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"], ["variant.id"], name=op.f("event_variant_id_fkey"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("event_pkey")),
    )
    op.create_index(
        "ix_event_experiment_variant_type",
        "event",
        ["experiment_id", "variant_id", "event_type", "occurred_at"],
        unique=False,
    )
    op.create_index(op.f("ix_event_request_id"), "event", ["request_id"], unique=False)
    op.create_index("ix_event_user_id_occurred_at", "event", ["user_id", "occurred_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_event_user_id_occurred_at", table_name="event")
    op.drop_index(op.f("ix_event_request_id"), table_name="event")
    op.drop_index("ix_event_experiment_variant_type", table_name="event")
    op.drop_table("event")
    op.drop_index(op.f("ix_assignment_variant_id"), table_name="assignment")
    op.drop_table("assignment")
    op.drop_table("variant")
    op.drop_index("ix_rating_rated_at", table_name="rating")
    op.drop_index("ix_rating_movie_id", table_name="rating")
    op.drop_table("rating")
    op.drop_index(op.f("ix_movie_tag_movie_id"), table_name="movie_tag")
    op.drop_table("movie_tag")
    op.drop_index(op.f("ix_movie_genre_genre_id"), table_name="movie_genre")
    op.drop_table("movie_genre")
    op.drop_index(op.f("ix_credit_person_id"), table_name="credit")
    op.drop_table("credit")
    op.drop_table("person")
    op.drop_index(op.f("ix_movie_year"), table_name="movie")
    op.drop_table("movie")
    op.drop_index(
        "ix_model_version_one_champion",
        table_name="model_version",
        postgresql_where=sa.text("status = 'champion'"),
    )
    op.drop_table("model_version")
    op.drop_table("genre")
    op.drop_table("experiment")
    op.drop_table("app_user")
    op.drop_index(op.f("ix_api_key_prefix"), table_name="api_key")
    op.drop_table("api_key")
