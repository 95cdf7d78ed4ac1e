-- CreateTable
CREATE TABLE "Customer" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT NOT NULL,

    CONSTRAINT "Customer_pkey" PRIMARY KEY ("id")
);

-- Seed (hand-written)
INSERT INTO "Customer" ("email", "name") SELECT 'user' || g || '@example.com', 'user ' || g FROM generate_series(1, 2000) g;
