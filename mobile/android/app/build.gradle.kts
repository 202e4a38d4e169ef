// Versions are pinned but unverified in the arsim repository (no Android SDK or Gradle there).
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.arsim.bench"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.arsim.bench"
        minSdk = 28 // MediaMetadataRetriever.getFramesAtIndex; ARCore itself needs 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }

    // The shared metrics vector (mobile/test-vectors/metrics-vector.json, written by the harness
    // side) is read in place by the JVM unit test: its path goes in as a system property.
    testOptions {
        unitTests.all {
            it.systemProperty(
                "arsim.metricsVector",
                rootProject.file("../test-vectors/metrics-vector.json").absolutePath,
            )
        }
    }
}

dependencies {
    implementation("com.google.ar:core:1.45.0")
    implementation("com.microsoft.onnxruntime:onnxruntime-android:1.20.0")

    testImplementation("junit:junit:4.13.2")
    // org.json is part of Android but only as stubs in JVM unit tests: the real one for tests.
    testImplementation("org.json:json:20240303")
}
